"""Classical reconstruction: the methods every learned one is measured against.

``fbp``         filtered backprojection and its filters (lesson 01)
``algorithms``  Landweber, SIRT, CGLS, MLEM and TV by Chambolle-Pock (lessons 02 and 06)
"""
