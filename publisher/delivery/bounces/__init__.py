"""Bounces and complaints that come back after a message was sent (issue "Reach the inbox").

`reading` tells what one returned message is (RFC 3464 DSN, RFC 5965 ARF
report, a non-standard bounce through flufl.bounce, an RFC 3834 auto-reply)
and which delivery it answers; `mailboxes` reads Maildir, mbox and IMAP
folders and moves what was read; `providers` checks and reads the webhooks
of Amazon SES (through SNS), Postmark and Mailgun; `actions` applies one
bounce to the store: the thresholds, the history, the suppression list.
"""
