"""The task service: lifecycle, queue and leases, webhooks."""
