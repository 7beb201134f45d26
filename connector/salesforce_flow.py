"""Placeholder while the connector is being written."""

from flask import Blueprint

blueprint = Blueprint("salesforce_flow", __name__)
