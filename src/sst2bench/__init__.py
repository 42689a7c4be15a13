"""sst2bench: what int8 quantization costs and buys for an SST-2 sentiment classifier."""

__version__ = "0.1.0"
