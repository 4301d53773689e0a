"""Projects: the unit of ownership and sharing; everything else lives inside one."""
