"""Pure computation over profiles (imports only `profd.formats`): no I/O here."""
