"""The delivery stage: senders (the outbox, SMTP) and the loop that sends a digest's messages."""
