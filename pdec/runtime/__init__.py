"""What emitted code runs on besides the Taylor runtime (torch, numpy, stdlib only)."""
