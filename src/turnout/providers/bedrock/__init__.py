"""AWS Bedrock's Converse API (``provider_type: bedrock``), signed with AWS Signature Version 4."""
