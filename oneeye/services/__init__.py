"""What the server does with people, cameras, sightings and users, below the web layer."""
