"""What every app shares and no app owns: the bottom layer, importing no app of the project."""
