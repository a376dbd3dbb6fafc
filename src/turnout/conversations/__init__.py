"""Conversation state the gateway keeps for clients: stored Responses API answers."""
