"""Attachments (issue 16.6): images and PDFs sent in a chat.

Why a package of its own: a file travels a different road from a message. Its bytes are
too big for the websocket's byte budget, so they go over HTTP -- sealed under a one-time
key the client learns only inside the sealed channel (:mod:`.tickets`) -- while the
*message* that carries it (file name, type, size) keeps the chat's ordering, ack and
resume guarantees. :mod:`.files` decides what a file really is and strips what it must
not carry; :mod:`.service` ties tickets, cleaning, scanning and storage together.
"""
