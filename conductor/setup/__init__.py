"""One-time set-up flows for official plugins (`conductor plugin setup NAME`)."""
