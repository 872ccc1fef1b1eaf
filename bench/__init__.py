"""tagsim's benchmark suite: each case runs ours and a baseline side by side, alternating."""
