"""Ratings of answers (explicit, implicit, self-evaluation) and the experience they feed."""
