"""File-system safety that every package uses: data never becomes a path outside its folder, and nothing is lost.

- `safepath`: paths and sample keys read from data (manifests, cards, Hub listings, tars) checked as plain names
- `atomic`: temp file + rename writes (a failed close never renames)
- `space`: a full disk is one line (`NoSpaceError`)
- `locks`: one run per output folder (`folder_lock`)
- `filehash`: the one file sha256
- `ownership`: whose folder this is (every writing command's mark), `check_apart`, `OwnedFolder`

Imports nothing else of the project.
"""
