"""Running algorithm containers one case per job, hardened, exactly as the organizer does."""
