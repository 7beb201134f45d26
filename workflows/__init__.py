"""The CRM-agnostic core: configuration, conditions, strategies, the router and the store."""
