"""The sandbox behind ``leadrelay demo``: local stand-ins of HubSpot and Salesforce, and the
traffic that exercises a real server against them. Nothing here talks to a real CRM.

Every page and answer of a stand-in says it is a sandbox, so nobody mistakes its records for a
real portal's or org's.
"""

# Set for a server the demo starts: its start-up log and the console say it is a sandbox.
SANDBOX_ENV = "LEADRELAY_SANDBOX"
