"""affectlab: facial action unit detection, AU intensity and dynamic expression recognition."""
__version__ = "0.1.0"
