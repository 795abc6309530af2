"""Privacy: erase a site everywhere (erase.py), export what is held about a site (export.py), and
apply the retention limits (retention.py). Matching a site's records in every store: matching.py."""
