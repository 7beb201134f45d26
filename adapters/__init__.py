"""CRM adapters: translate each CRM's records into the common model and back."""
