"""What the replicas of one deployment share: a Redis connection and the change events sent over it.

Without ``TURNOUT_REDIS_URL`` a deployment is one process and nothing here is used."""
