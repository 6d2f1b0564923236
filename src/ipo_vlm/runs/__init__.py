"""Reading finished runs: ranking scored templates, exporting and applying what a run found."""
