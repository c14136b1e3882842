"""Platform adapters: platform events in, one core call, the platform's response out."""
