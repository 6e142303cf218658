"""What the settings' field groups share: the length of a day in seconds."""

DAY_SECONDS = 86_400
