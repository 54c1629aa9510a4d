"""chaoscheck inside Locust's own process: a whole run for every test started from the web UI, and
the web UI's Chaos tab.

``chaoscheck.webui.plugin`` is the part that Locust loads (the locustfile imports it before
``loadtests.plugin``); ``options`` declares the start form's fields and checks the run they describe;
``webrun`` is one run around a ``RunSession``; ``runs`` follows the runs of the process through
Locust's events; ``tab`` serves the Chaos tab. See docs/webui.md.

Importing this package does nothing by itself: only ``chaoscheck.webui.plugin`` touches Locust.
"""
