"""Platform adapters: a platform's event in, one service call, the platform's response out.

``sqs`` (claim-check batches with partial failures), ``http`` (hubs' webhooks),
``schedule`` (the hourly job), ``events`` (parsing claim checks and S3 notifications),
``apps`` (one app per function: which of those an event goes to), ``logs``.
"""
