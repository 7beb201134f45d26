"""HubSpot: contacts in the common model, the API client and its shared budget, the action's
payload and definition, the sweep's reader and the owner search."""
