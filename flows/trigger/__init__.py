"""The boundary the outside world calls: the Lambda / API handler (JWT-authenticated API requests, SQS,
SNS, EventBridge) that starts deployment runs through Prefect's REST API and records SES feedback.
Module-level imports here stay within the standard library, PyJWT and boto3 (the Lambda zip's check)."""
