"""What the portal tells other systems about its work: openlineage (every build's run events)."""
