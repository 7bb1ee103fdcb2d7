"""The reference algorithm container: its Dockerfile, its program, and the offline build."""
