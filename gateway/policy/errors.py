"""The one error the policy package raises for bad configuration."""


class PolicyConfigError(ValueError):
    """A tenant's policy settings or keyword files are invalid.

    The message names the setting or the file and line, so an admin can fix it; the gateway
    keeps the previous (valid) policy in force rather than running without one.
    """
