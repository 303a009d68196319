"""`kiosk-fleet serve`: the operations dashboard, the JSON API and ``/metrics`` over the store."""
