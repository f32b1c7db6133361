"""Reference data the detector consults, as a fraud team would from threat-intel feeds.

The simulator draws from the same lists, the way real traffic and a real feed overlap.
"""

# IP prefixes of VPN, proxy and hosting providers (a stand-in for an IP-reputation feed).
VPN_IP_PREFIXES = ("185.220.101.", "104.28.14.", "45.86.200.", "193.32.126.", "89.187.175.")

# Offshore financial centres that AML rules treat as high-risk destinations.
HIGH_RISK_COUNTRIES = ("KY", "PA", "BZ", "VG")

# US currency transaction reporting threshold; structuring stays just below it.
CTR_THRESHOLD_USD = 10_000.0
