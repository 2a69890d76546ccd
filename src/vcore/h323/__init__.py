"""H.323 signalling: TPKT, Q.931, H.225.0 and H.245 (via pycrate), Fast Connect and the call state machine."""
