"""One adapter per external system: DynamoDB, Stripe, SQS."""
