"""The MQTT bridge: a long-running process next to a city's broker (a container, a
service), deployed apart from the functions. It subscribes to the topics the city file
declares, and writes what the broker delivers through the library's edge
(``citypipe.service.bridge``), acknowledging each message only once it is written.

This package holds only what needs an MQTT client (paho-mqtt) and a process: the client
adapter (``mqtt``), the settings (``settings``), the composition root and the command
(``main``: ``citypipe-bridge``). paho never enters the Lambda layer: an import contract
says so.
"""
