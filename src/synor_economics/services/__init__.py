"""Use cases. They speak to the outside only through ``ports``; faces call them."""
