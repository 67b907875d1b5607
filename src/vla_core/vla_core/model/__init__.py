"""The VLA network: observation encoders, the flow-matching action expert and the policy."""
