# The tests' working directory: emptied before the suite (MODE=clear), and checked after it
# (MODE=check): a file there is a test that wrote outside its temporary directory.
file(GLOB left RELATIVE ${DIR} ${DIR}/* ${DIR}/.*)
if(MODE STREQUAL "clear")
  foreach(f ${left})
    file(REMOVE_RECURSE ${DIR}/${f})
  endforeach()
elseif(left)
  message(FATAL_ERROR "tests left files in their working directory ${DIR}: ${left}\n"
                      "a test wrote outside its temporary directory (a relative path?)")
endif()
