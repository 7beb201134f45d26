"""Salesforce: Leads in the common model, Outbound Messages, the REST client and its sign-in,
the sweep's reader and the owner search."""
