"""Lifecycle governance: governed environments launched from blueprints, their drivers and scheduler."""

from costplane.lifecycle.drivers import Driver, DriverError, DriverSet, LaunchSpec

__all__ = ["Driver", "DriverError", "DriverSet", "LaunchSpec"]
