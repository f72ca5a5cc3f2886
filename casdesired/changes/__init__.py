"""Changes: the typed differences between the desired and the live estate."""
