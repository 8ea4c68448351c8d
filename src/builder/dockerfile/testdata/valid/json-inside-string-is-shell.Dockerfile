FROM alpine
CMD '["echo", "Well, JSON in a string is JSON too?"]'
CMD "[\"echo\", \"escaped\"]"
