"""What goes to a device: atomic artifact sets, the C array, and firmware files."""
