"""Classical reconstruction: the methods every learned one is measured against.

``fbp``         filtered backprojection and its filters (lesson 01)
``algorithms``  Landweber, SIRT, CGLS, MLEM and TV by Chambolle-Pock (lessons 02 and 06)
``plug_and_play``  a denoiser in place of a proximal step (lesson 11)
``fdk``         FDK: filtered backprojection for circular cone-beam CT (lesson 13)
"""
