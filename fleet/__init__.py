"""Central operations side: what the fleet monitor and dashboard know of every terminal."""
