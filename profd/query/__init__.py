"""The read side: what the index answers (profiles, functions, outcomes), for the API and UI."""
