"""A construction-management app's realtime layer, modelled on Kibray's.

The app holds what Kibray's WebSocket consumers read and write (projects
and their members, chat channels and messages with read receipts,
notifications, presence), the ten WebSocket routes served by Channels
consumers, the same logic exposed as signed internal hooks for the sidecar
(kibray.hook_views), publishers for every server-side event
(kibray.publishers), and test-only endpoints that create fixtures and mint
credentials (kibray.testapi_views).
"""
