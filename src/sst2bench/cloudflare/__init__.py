"""Cloudflare Workers AI's ``@cf/huggingface/distilbert-sst-2-int8`` as one more system."""
