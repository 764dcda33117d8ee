"""Local development stack: stand-ins for the cloud services tracekit talks to."""
