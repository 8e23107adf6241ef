"""Instance generation: synthetic profiles now; the Chasseray protocol and the
seasonal block bootstrap grow here (see the issues)."""
